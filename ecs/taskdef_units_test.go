package ecs

import "testing"

func TestTaskCPUUnits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int32 // 0: refused
	}{
		{"1024", 1024},
		{"256", 256},
		{" 512 ", 512},
		{"1 vCPU", 1024},
		{"1 vcpu", 1024},
		{"1vCPU", 1024},
		{"2 VCPU", 2048},
		{"0.25 vCPU", 256},
		{".5 vcpu", 512},
		{"0.125 vCPU", 128},
		{"16 vCPU", 16384},
		{"192 vCPU", 196608},
		{"0.1 vCPU", 0}, // 102.4 units: not a whole number
		{"1.5", 0},      // a bare number is units, and units are whole
		{"", 0},
		{"vCPU", 0},
		{"-1", 0},
		{"0", 0},
		{"1e3", 0},
		{"1 e3 vCPU", 0},
		{"1/2 vCPU", 0},
		{"+1 vCPU", 0},
		{"1 GB", 0},
		{"99999999999", 0},
		{"3000000 vCPU", 0},
	} {
		got, ok := TaskCPUUnits(tc.in)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("TaskCPUUnits(%q) = %d, %v; want %d", tc.in, got, ok, tc.want)
		}
	}
}

func TestTaskMemoryMiB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int32
	}{
		{"512", 512},
		{"2048", 2048},
		{"2GB", 2048},
		{"2 GB", 2048},
		{"2 gb", 2048},
		{"0.5GB", 512},
		{"0.5 GB", 512},
		{"120 GB", 122880},
		{"1.1 GB", 0}, // 1126.4 MiB
		{"2 MB", 0},
		{"2 GiB", 0},
		{"2G", 0},
		{"GB", 0},
		{"", 0},
	} {
		got, ok := TaskMemoryMiB(tc.in)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("TaskMemoryMiB(%q) = %d, %v; want %d", tc.in, got, ok, tc.want)
		}
	}
}

func FuzzTaskCPUUnits(f *testing.F) {
	for _, s := range []string{"1024", "1 vCPU", ".25 vcpu", "2GB", "1e9 vCPU"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := TaskCPUUnits(s); ok && n <= 0 {
			t.Fatalf("TaskCPUUnits(%q) = %d", s, n)
		}
		if n, ok := TaskMemoryMiB(s); ok && n <= 0 {
			t.Fatalf("TaskMemoryMiB(%q) = %d", s, n)
		}
	})
}
