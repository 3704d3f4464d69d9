package app

// MigrateVerbs bring configurations in from supervisord and hand plans out to other engines.
type MigrateVerbs struct {
	Import  ImportCmd  `cmd:"" help:"Print a deploy script equivalent to a supervisord configuration."`
	Export  ExportCmd  `cmd:"" help:"Write the plan as supervisord, systemd or Nomad configuration."`
	Service ServiceCmd `cmd:"" help:"Install or remove a systemd unit that runs this deployment's daemon."`
}
