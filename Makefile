# Set-up and the two jobs: `make demo` (the default pipeline) and `make test`.
PYTHON ?= python3
VENV := .venv
DEBIAN_PACKAGES := dataset-fashion-mnist g++ cmake gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo test clean

setup: $(VENV)/.installed

system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | system-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

demo: setup system-packages
	$(VENV)/bin/tinykd run

test: setup system-packages
	$(VENV)/bin/python -m pytest -q -n auto

clean:
	rm -rf $(VENV) runs build .pytest_cache
