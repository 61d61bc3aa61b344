# No ipBlock may be wider than a /16 (`world` and `internet` are 0.0.0.0/0
# and ::/0, so they break this rule too). The narrowest prefix allowed is a
# parameter: `minPrefixLength` in parameters.yaml (default 16).
#
# Gatekeeper library style, Rego v0: `violation[{"msg": msg}]` over
# `input.review.object`.
package netpolc.cidrwidth

violation[{"msg": msg}] {
	cidr := blocks[_]
	length := to_number(split(cidr, "/")[1])
	length < min_prefix_length
	msg := sprintf("ipBlock %v is wider than /%v", [cidr, min_prefix_length])
}

min_prefix_length = object.get(input.parameters, "minPrefixLength", 16)

blocks[cidr] {
	cidr := input.review.object.spec.ingress[_].from[_].ipBlock.cidr
}

blocks[cidr] {
	cidr := input.review.object.spec.egress[_].to[_].ipBlock.cidr
}
