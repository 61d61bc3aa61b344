# No policy may open port 22 (SSH), alone or inside a port range, in either
# direction. A rule without ports opens every port, 22 included: that is
# not this rule's business (an intent without ports is a choice made in
# plain sight).
#
# Gatekeeper library style, Rego v0.
package netpolc.nossh

violation[{"msg": msg}] {
	some direction
	rules := input.review.object.spec[direction]
	port := rules[_].ports[_]
	opens_22(port)
	msg := sprintf("%v rule opens port 22 (SSH)", [direction])
}

opens_22(port) {
	port.port == 22
}

opens_22(port) {
	port.port <= 22
	22 <= port.endPort
}
