# The rule of ../rego/no-ssh.rego, in Rego v1 (OPA 1.0): Gatekeeper style,
# `violation contains {"msg": msg} if`.
package netpolc.nossh

violation contains {"msg": msg} if {
	some direction, rules in input.review.object.spec
	some rule in rules
	some port in rule.ports
	opens_22(port)
	msg := sprintf("%v rule opens port 22 (SSH)", [direction])
}

opens_22(port) if port.port == 22

opens_22(port) if {
	port.port <= 22
	22 <= port.endPort
}
