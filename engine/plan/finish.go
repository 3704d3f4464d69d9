package plan

import "fmt"

// Finish makes a freshly built plan ready for the engine: it sets Format when
// unset, makes nil lists and maps empty, puts a numprocs > 1 program with no
// group into the group of its own name (as supervisord does), validates, sorts
// Programs into start order and sets each Hash. On a validation error the plan
// is left normalised but unsorted and unhashed.
func (p *Plan) Finish() error {
	if p.Format == 0 {
		p.Format = Format
	}
	if p.Format != Format {
		return fmt.Errorf("finish: format: is %d, want %d", p.Format, Format)
	}
	p.normalise()
	for i := range p.Programs {
		if pr := &p.Programs[i]; pr.Group == "" && pr.Numprocs > 1 {
			pr.Group = pr.Name
		}
	}
	if err := p.Validate(); err != nil {
		return err
	}
	p.Programs = startOrder(p.Programs, p.Groups)
	for i := range p.Programs {
		p.Programs[i].Hash = HashProgram(p.Programs[i])
	}
	return nil
}
