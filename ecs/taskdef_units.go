package ecs

import (
	"math"
	"math/big"
	"strings"
)

// Task-level cpu and memory are strings. ECS accepts CPU units ("1024") or
// vCPUs ("1 vCPU", "1 vcpu", "0.5 vCPU") and MiB ("2048") or GB ("2GB",
// "2 GB"), and stores the number: "String values are converted to an integer
// indicating the CPU units [MiB] when the task definition is registered"
// (RegisterTaskDefinition API reference, cpu and memory members).

// TaskCPUUnits converts a task-level cpu value to CPU units (1 vCPU = 1024).
// It reports false for anything else, including fractions of a unit.
func TaskCPUUnits(s string) (int32, bool) {
	return parseUnits(s, "vcpu", 1024)
}

// TaskMemoryMiB converts a task-level memory value to MiB (1 GB = 1024 MiB).
func TaskMemoryMiB(s string) (int32, bool) {
	return parseUnits(s, "gb", 1024)
}

// parseUnits reads "<integer>" as is, or "<decimal> <suffix>" (any case,
// optional space) times scale; the result must be a positive whole number
// that fits an int32.
func parseUnits(s, suffix string, scale int64) (int32, bool) {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	if num, ok := strings.CutSuffix(lower, suffix); ok {
		num = strings.TrimSpace(num)
		if !isDecimal(num) {
			return 0, false
		}
		r, ok := new(big.Rat).SetString(num)
		if !ok {
			return 0, false
		}
		r.Mul(r, new(big.Rat).SetInt64(scale))
		if !r.IsInt() || !r.Num().IsInt64() {
			return 0, false
		}
		return positiveInt32(r.Num().Int64())
	}
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 10 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return positiveInt32(n)
}

// isDecimal reports whether s is digits with at most one '.', as in "0.5"
// or ".25", and no sign, exponent or fraction syntax big.Rat would accept.
func isDecimal(s string) bool {
	if s == "" || s == "." || len(s) > 16 {
		return false
	}
	dot := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}

func positiveInt32(n int64) (int32, bool) {
	if n <= 0 || n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}
