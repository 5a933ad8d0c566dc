# twinstage: build, test, install, demo.
#
#   make           build build/twinstage
#   make demo      install what is missing, build, rehearse the bundled examples
#   make check     install what is missing, check the layout, run the Criterion suite under ASan+UBSan
#   make fuzz      run each libFuzzer target for FUZZ_SECONDS (default 60) under ASan+UBSan
#   make bench     compare twinstage with what a user would do (bench/*.sh)
#   make install   PREFIX=/usr/local DESTDIR=
#
# `make deps` installs the Debian packages twinstage needs when one is
# missing; every target that builds or runs uses it.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc

DEB_PACKAGES = gcc make pkg-config libpq-dev libinih-dev libpg-query-dev libcsv-dev pgreplay \
	libprotobuf-c-dev libjansson-dev libssl-dev zlib1g-dev libcriterion-dev postgresql postgresql-client xfsprogs \
	libvirt-dev libvirt-daemon-system libguestfs-dev qemu-system-x86 qemu-utils debootstrap linux-image-amd64 \
	libxml2-dev openssh-client openssh-server extlinux libblkid-dev grub-common clang libclang-rt-14-dev \
	python3 python3-jsonschema python3-yaml alembic python3-alembic python3-django python3-psycopg2 \
	sqitch libdbd-pg-perl ruby-activerecord ruby-pg busybox-static cpio xz-utils tini guestfish

WARN = -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I/usr/include/postgresql -I/usr/include/libxml2 -Iharness
LIBS = -lpq -linih -lpg_query -lcsv -ljansson -lcrypto -lz -lm -pthread -lvirt -lvirt-qemu -lguestfs -lxml2 -lblkid

SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# harness/ in layers, one folder each (harness/README.md); main.c above them.
LAYERS = core pg report migrate config workload env rehearse release cmd
HARNESS_SRC = $(foreach l,$(LAYERS),$(wildcard harness/$(l)/*.c))
TEST_SRC = $(wildcard tests/*.c)
HEADERS = $(foreach l,$(LAYERS),$(wildcard harness/$(l)/*.h)) $(wildcard tests/*.h)

OBJ = $(HARNESS_SRC:harness/%.c=build/obj/%.o)
ASAN_OBJ = $(HARNESS_SRC:harness/%.c=build/asan/obj/%.o)

all: build/twinstage

build/obj/%.o: harness/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/twinstage: $(OBJ) build/obj/main.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

build/asan/obj/%.o: harness/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -c -o $@ $<

build/asan/twinstage: $(ASAN_OBJ) build/asan/obj/main.o
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(LIBS)

build/asan/tests: $(TEST_SRC) $(ASAN_OBJ) $(HEADERS)
	$(CC) $(ALL_CFLAGS) $(SAN) -Itests -o $@ $(TEST_SRC) $(ASAN_OBJ) $(LIBS) -lcriterion

# libFuzzer targets (tests/fuzz/): the readers of what users write, under
# ASan and UBSan. Each runs FUZZ_SECONDS from its seed corpus
# (tests/fuzz/corpus/<target>); what it finds new stays in build/fuzz, and
# a crash stops the run with the input that caused it
# (build/fuzz/crash-<target>-*), to become a regression test.
FUZZ_TARGETS = config scenario migrations lint batch manifest pglog
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 10
FUZZ_CC = clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJ = $(HARNESS_SRC:harness/%.c=build/fuzz/obj/%.o)
.SECONDARY: $(FUZZ_OBJ)

build/fuzz/obj/%.o: harness/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -O1 -g -I/usr/include/postgresql -I/usr/include/libxml2 -Iharness \
		$(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -O1 -g -I/usr/include/postgresql -I/usr/include/libxml2 -Iharness \
		$(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LIBS)

fuzz: deps $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		UBSAN_OPTIONS=print_stacktrace=1 build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
			-print_final_stats=0 -artifact_prefix=build/fuzz/crash-$$t- \
			build/fuzz/corpus/$$t tests/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1 \
		|| { tail -40 build/fuzz/$$t.log; echo "fuzz: $$t crashed; the input is build/fuzz/crash-$$t-*"; exit 1; }; \
		grep -E "^#[0-9]+.*DONE" build/fuzz/$$t.log | tail -1; \
	done

# Installs what is missing, and only then (no root needed when nothing is).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The suite under AddressSanitizer and UBSan. The end-to-end tests run the
# sanitized binary with leak detection on and fail on any sanitizer report,
# so the whole program is checked, not only the units. (The runner itself
# does not check leaks: a failed assertion exits before a test frees.)
check: deps layers build/asan/twinstage build/asan/tests
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	TWINSTAGE_BIN=$(CURDIR)/build/asan/twinstage TWINSTAGE_SRC=$(CURDIR) \
	./build/asan/tests --jobs 2 $(CRITERION_FLAGS)
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)

check-asan: check

# The layout's rules (harness/README.md): each file includes only its own
# layer and the layers below, and no files include each other in a circle.
layers:
	@tests/check-layers.sh

# Each example exists to show one verdict; the demo fails if one does not.
demo: deps all
	@set -u; fail=0; \
	for ex in invoices:0 rename-breaks:1 registry:0 django-shop:0 django-shop/twinstage-rename:1 \
		  alembic-shop:0 alembic-shop/twinstage-rename:1 shop-captured:1 shop-captured/twinstage-fixed:0 \
		  upgrade-17:1 upgrade-17/twinstage-fixed:0; do \
		name=$${ex%%:*}; want=$${ex##*:}; \
		case $$name in */*) ini=scenarios/$$name.ini ;; *) ini=scenarios/$$name/twinstage.ini ;; esac; \
		echo "=== twinstage rehearse -c $$ini (expect exit $$want)"; \
		./build/twinstage rehearse -c $$ini; got=$$?; \
		if [ $$got -ne $$want ]; then echo "demo: $$name exited $$got, expected $$want"; fail=1; \
		else echo "=== $$name: exit $$got, as expected"; fi; echo; \
	done; exit $$fail

# Benchmarks: twinstage against what a user would do, in one run, as ratios.
bench: deps all
	@for b in bench/*.sh; do case $$b in */common.sh) continue;; esac; $$b || exit 1; done

install: build/twinstage
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/twinstage/envs $(DESTDIR)$(PREFIX)/share/twinstage/stacks
	install -m 0755 build/twinstage $(DESTDIR)$(PREFIX)/bin/twinstage
	install -m 0644 envs/*.ini $(DESTDIR)$(PREFIX)/share/twinstage/envs/
	install -m 0644 stacks/*.ini $(DESTDIR)$(PREFIX)/share/twinstage/stacks/

clean:
	rm -rf build

.PHONY: all deps check check-asan layers fuzz demo bench install clean
