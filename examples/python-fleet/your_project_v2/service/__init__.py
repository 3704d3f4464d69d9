"""Example services, code version v2."""

VERSION = "v2"
