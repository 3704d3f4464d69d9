"""Example services, code version v1."""

VERSION = "v1"
