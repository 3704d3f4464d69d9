package app

import (
	"reflect"
	"strings"
)

// leanCLI returns a pointer to a struct holding only the verb args[0] names, or nil. kong
// builds its model of every verb, flag and tag by reflection, which costs milliseconds on
// each start; a one-verb model keeps `status` and the other client verbs quick. Help
// requests use the whole CLI, so --help output is unchanged.
func leanCLI(args []string) any {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return nil
	}
	for _, a := range args {
		if a == "-h" || a == "--help" {
			return nil
		}
	}
	f, ok := verbField(reflect.TypeFor[CLI](), args[0])
	if !ok {
		return nil
	}
	t := reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}})
	return reflect.New(t).Interface()
}

// verbField finds the `cmd:""` field named verb in t or in the structs it embeds.
func verbField(t reflect.Type, verb string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("embed"); ok && f.Type.Kind() == reflect.Struct {
			if g, ok := verbField(f.Type, verb); ok {
				return g, true
			}
			continue
		}
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		name := f.Tag.Get("name")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == verb {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
