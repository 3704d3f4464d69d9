#!/bin/sh
# Creates the interpreters that etc/deploy.star names: two virtualenvs without pip,
# both on top of the system python3. Safe to run again.
set -eu
cd "$(dirname "$0")"
for env in base pyocr; do
	if [ ! -x "envs/$env/bin/python" ]; then
		python3 -m venv --without-pip "envs/$env"
	fi
done
echo "interpreters ready: envs/base envs/pyocr"
