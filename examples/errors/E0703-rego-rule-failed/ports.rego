# A rule that fails on some objects: `concat` needs strings, and a port
# list holds objects. Gatekeeper would fail the admission request; netpolc
# reports the rule once, on the first policy it fails on.
package netpolc.ports

violation[{"msg": msg}] {
	rule := input.review.object.spec[_][_]
	count(rule.ports) > 3
	msg := sprintf("too many ports: %v", [concat(", ", rule.ports)])
}
