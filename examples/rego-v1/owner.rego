# The rule of ../rego/owner.rego, in Rego v1 and conftest style:
# `deny contains msg if`, with the object itself as `input`.
package netpolc.owner

deny contains msg if {
	annotations := object.get(input.metadata, "annotations", {})
	annotations["netpolc.io/intent"]
	not annotations["netpolc.io/owner"]
	msg := "policy has no `netpolc.io/owner` annotation: give its intent an owner"
}
