// The linearizability checker (docs/testing.md, "Linearizability"): histories, the search, the
// service model, and the recorder that drives a real Baton API.
export type { Model, Operation, Outcome } from "./history.js";
export { checkHistory, type CheckResult, type Violation } from "./check.js";
export { searchLinearization } from "./search.js";
export { canonical, describeOp, serviceModel, type ServiceInput, type ServiceModelOptions, type ServiceOp, type ServiceOutput, type ServiceState } from "./service-model.js";
export { recordHistory, type Endpoint, type RecordOptions } from "./recorder.js";
