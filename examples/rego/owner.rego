# Every policy generated from an intent (it carries a `netpolc.io/intent`
# annotation) names its owner: `@owner TEAM` before the intent, or
# `meta owner = TEAM` for a whole file, gives `netpolc.io/owner`. The
# namespace's `default-deny` comes from no intent and is not concerned.
# The annotation key is a parameter: `key` in parameters.yaml.
#
# Gatekeeper library style, Rego v0.
package netpolc.owner

violation[{"msg": msg}] {
	annotations := object.get(input.review.object.metadata, "annotations", {})
	annotations["netpolc.io/intent"]
	not annotations[owner_key]
	msg := sprintf("policy has no `%v` annotation: give its intent an owner", [owner_key])
}

owner_key = object.get(input.parameters, "key", "netpolc.io/owner")
