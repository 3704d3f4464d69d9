package app

// MigrateVerbs bring configurations in from supervisord and hand plans out to other engines.
type MigrateVerbs struct {
	Import ImportCmd `cmd:"" help:"Print a deploy script equivalent to a supervisord configuration."`
}
