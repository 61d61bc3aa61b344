# A Gatekeeper rule (Rego v0) with a mistake: the closing parenthesis of
# `sprintf` is missing.
package netpolc.labels

violation[{"msg": msg}] {
	labels := object.get(input.review.object.metadata, "labels", {})
	not labels["app.kubernetes.io/part-of"]
	msg := sprintf("policy %v has no `app.kubernetes.io/part-of` label", [input.review.name]
}
