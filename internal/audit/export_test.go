package audit

// ProcessCPU is processCPU for the external benchmarks (readbench_test.go).
var ProcessCPU = processCPU
