# Each recipe is a plain command you can also type yourself.

# Run every test: unit tests, the conformance suite, the examples.
test:
    go test ./...

# Run the benchmarks only (no tests).
bench:
    go test -run '^$' -bench . ./...

# Formatting and vet; prints the files gofmt would change.
lint:
    test -z "$(gofmt -l .)" || (gofmt -l . && exit 1)
    go vet ./...

# Build the binary into ./bin/starvisor, static (README "Command line": faster starts).
build:
    CGO_ENABLED=0 go build -o bin/starvisor ./cmd/starvisor

# Run scenarios under the real supervisord and starvisor; rewrites conformance/DIFF.md.
conformance-diff:
    command -v supervisord >/dev/null || (apt-get update && apt-get install -y supervisor)
    go run ./conformance/diff -o conformance/DIFF.md

# Long reliability run (minutes): 500 stop/start cycles; 100 programs while random children
# are SIGKILLed ~100 times a second for 60 s; the other soak-sized loops.
soak:
    STARVISOR_SOAK=1 go test -count=1 -timeout 30m ./engine/reliability/
