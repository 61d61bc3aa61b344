# The rule of ../rego/cidr-width.rego, in Rego v1 (OPA 1.0): Gatekeeper
# style, `violation contains {"msg": msg} if`, with its parameters.
package netpolc.cidrwidth

violation contains {"msg": msg} if {
	some cidr in blocks
	length := to_number(split(cidr, "/")[1])
	length < min_prefix_length
	msg := sprintf("ipBlock %v is wider than /%v", [cidr, min_prefix_length])
}

min_prefix_length := object.get(input.parameters, "minPrefixLength", 16)

blocks contains cidr if {
	some rule in input.review.object.spec.ingress
	some peer in rule.from
	cidr := peer.ipBlock.cidr
}

blocks contains cidr if {
	some rule in input.review.object.spec.egress
	some peer in rule.to
	cidr := peer.ipBlock.cidr
}
