# ipguard — the project's habits. `make demo` runs the main job, `make test` the tests.
# Each target installs what it needs on a fresh machine (Debian packages via apt-get, a virtualenv).

VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
APT_PKGS  := tzdata nmap arp-scan tinyproxy dnsmasq-base nftables iproute2 socat curl postgresql chromium cron \
             kea-dhcp4-server snmpd snmp fonts-noto-cjk poppler-utils dsniff arping arpwatch udhcpc \
             radvd thc-ipv6 squid microsocks faketime isc-dhcp-server avahi-daemon \
             openssh-server nginx vsftpd keepalived
PYTEST_ARGS ?= -n 2
BENCH_ARGS ?=

.PHONY: install system-packages test lint demo bench lab-up lab-down clean

install: system-packages $(STAMP)

# apt-get only for packages that are missing, so a warm machine does no network work. The lab's
# daemons (dnsmasq, Kea, ISC dhcpd, squid, snmpd, radvd, avahi, …) are installed without starting
# their services (policy-rc.d refuses, as in a container): the tests run their own copies inside
# lab namespaces, and a DHCP server or mDNS responder started on this machine's own network is not
# what `make test` is for.
system-packages:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root to install)"; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; \
	    trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check ipguard scanners policies tests bench
	$(VENV)/bin/ruff format --check ipguard scanners policies tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: install
	$(PY) -m tests.lab.demo

bench: install
	$(PY) -m bench $(BENCH_ARGS)

lab-up: install
	$(PY) -m tests.lab up --scenario demo

lab-down:
	$(PY) -m tests.lab down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
