# Two commands do everything on a fresh Debian 12 machine: `make demo` and `make test`.
# Each step leaves a stamp, so a re-run with nothing changed only runs the job.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := .stamps
export QT_QPA_PLATFORM ?= offscreen
CERT := $(if $(wildcard /etc/ssl/certs/ca-certificates.crt),--cert /etc/ssl/certs/ca-certificates.crt,)

.PHONY: demo test bench plugin venv clean

demo: $(STAMPS)/venv
	$(VENV)/bin/seg demo --out demo-output

test: $(STAMPS)/venv
	sh tools/start_postgis.sh   # a real PostgreSQL with PostGIS for the label-store tests
	sh tools/qgis_chroot.sh trixie >/dev/null   # QGIS 3.40 LTR; kept in /var/cache/seg/chroots between runs
	sh tools/qgis_chroot.sh sid >/dev/null      # QGIS 3.44
	$(PY) -m pytest -q

bench: $(STAMPS)/venv
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

plugin: $(STAMPS)/venv
	$(PY) tools/build_plugin.py --out dist

venv: $(STAMPS)/venv

$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@if ! dpkg -s qgis python3-qgis qgis-providers python3-venv python3-pip xvfb >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    qgis python3-qgis qgis-providers python3-venv python3-pip python3-gdal python3-scipy python3-matplotlib xvfb; fi
	@touch $@

# torch and torchvision come as the matching PyPI pair (--isolated skips the local CPU-only torch
# wheel, which has no torchvision to match); everything else is pinned in requirements.txt.
$(STAMPS)/torch: $(STAMPS)/apt constraints.txt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@$(PY) -c "import torch, torchvision; assert torch.__version__.startswith('2.13.0') and torchvision.__version__.startswith('0.28.0')" 2>/dev/null \
	  || $(PIP) install -q --isolated $(CERT) torch==2.13.0 torchvision==0.28.0 numpy==1.24.2
	@touch $@

$(STAMPS)/venv: $(STAMPS)/torch requirements.txt requirements-sam2.txt requirements-sam3.txt pyproject.toml
	$(PIP) install -q -c constraints.txt -r requirements.txt -r requirements-sam3.txt
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-deps --no-build-isolation -r requirements-sam2.txt
	$(PIP) install -q -c constraints.txt --no-deps --no-build-isolation -e .
	@touch $@

clean:
	rm -rf $(STAMPS) $(VENV) demo-output dist .pytest_cache
