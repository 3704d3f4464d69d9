module github.com/starvisor/starvisor

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/matryer/is v1.4.1 // indirect
	github.com/natefinch/atomic v1.0.1 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/shirou/gopsutil/v4 v4.26.10 // indirect
	go.starlark.net v0.0.0-20260908191801-89a6a09411d5 // indirect
)
