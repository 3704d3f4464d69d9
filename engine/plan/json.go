package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// JSON returns the plan's stable JSON form: two-space indent, fields in
// declaration order, map keys sorted, a trailing newline. Lists and maps that
// are nil print as [] and {} (a reader need not tell "none" from "unset");
// stdout, stderr and ready print as null when unset, because there null means
// something (discard the stream, no probe). "<", ">" and "&" stay as they are:
// commands such as "a && b" must be readable. The error is always nil today;
// it is there so the encoding may grow a failure mode without an API change.
func (p *Plan) JSON() ([]byte, error) {
	c := *p
	c.normaliseCopy()
	return appendPlan(make([]byte, 0, 1024+1500*len(c.Programs)), &c), nil
}

// Decode reads a plan's JSON form strictly (an unknown field, a second value
// or a format other than Format is an error), then validates it and checks
// that the programs are in start order with their hashes right, so the engine
// can trust a decoded plan as it trusts a Finished one.
func Decode(data []byte) (*Plan, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode plan: unexpected data after the plan")
	}
	if p.Format != Format {
		return nil, fmt.Errorf("decode plan: format: is %d, this starvisor reads %d", p.Format, Format)
	}
	p.normalise()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := p.checkFinished(); err != nil {
		return nil, err
	}
	return &p, nil
}

// checkFinished reports what Finish would have changed: program order and hashes.
func (p *Plan) checkFinished() error {
	var ps problems
	want := startOrder(p.Programs, p.Groups)
	for i := range want {
		if got := p.Programs[i].ProcessName; want[i].ProcessName != got {
			ps.add("", "plan", "programs", "not in start order: entry %d is %q, want %q", i, got, want[i].ProcessName)
			break
		}
	}
	for i := range p.Programs {
		pr := &p.Programs[i]
		if h := HashProgram(*pr); pr.Hash != h {
			ps.program(pr, "hash", "is %q, but the program's fields hash to %q", pr.Hash, h)
		}
	}
	return ps.err()
}

// normalise makes nil lists and maps empty, in place.
func (p *Plan) normalise() {
	if p.Programs == nil {
		p.Programs = []Program{}
	}
	for i := range p.Programs {
		p.Programs[i].normalise()
	}
	if p.Groups == nil {
		p.Groups = []Group{}
	}
	for i := range p.Groups {
		if p.Groups[i].Programs == nil {
			p.Groups[i].Programs = []string{}
		}
	}
	if p.Inputs.Files == nil {
		p.Inputs.Files = map[string]string{}
	}
	if p.Inputs.Env == nil {
		p.Inputs.Env = map[string]string{}
	}
}

// normaliseCopy is normalise for a shallow copy of a plan: it copies the
// Programs and Groups slices before touching them, and only when needed, so
// the original is never changed.
func (p *Plan) normaliseCopy() {
	for i := range p.Programs {
		if p.Programs[i].needsNormalising() {
			p.Programs = slices.Clone(p.Programs)
			break
		}
	}
	if slices.ContainsFunc(p.Groups, func(g Group) bool { return g.Programs == nil }) {
		p.Groups = slices.Clone(p.Groups)
	}
	p.normalise()
}

func (pr *Program) needsNormalising() bool {
	return pr.Command == nil || pr.Env == nil || pr.ExitCodes == nil || pr.DependsOn == nil
}

func (pr *Program) normalise() {
	if pr.Command == nil {
		pr.Command = []string{}
	}
	if pr.Env == nil {
		pr.Env = map[string]string{}
	}
	if pr.ExitCodes == nil {
		pr.ExitCodes = []int{}
	}
	if pr.DependsOn == nil {
		pr.DependsOn = []string{}
	}
}
