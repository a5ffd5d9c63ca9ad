# The C libraries and their installation.
#   make                       target/release/libmpkit.{a,so} (SONAME libmpkit.so.<major>)
#   make install PREFIX=/opt/mpkit [DESTDIR=...]
#                              lib/libmpkit.a, lib/libmpkit.so.X.Y.Z (+ .so.X, .so links),
#                              include/mpkit.h (+ mpkit.hpp), lib/pkgconfig/mpkit.pc,
#                              lib/cmake/mpkit/mpkitConfig.cmake (+ version file): mpkit::mpkit
#   make uninstall PREFIX=...  removes what install put there
#   make mpi                   target/release/libmpkit_mpi.{a,so}: the MPI map (mpi/, needs mpicc);
#                              the static library contains libmpkit; header include/mpkit_mpi.h
#   make check                 installs into a temporary prefix and builds and runs
#                              c-examples/pool_map.c three ways: pkg-config, pkg-config --static,
#                              CMake find_package (CI runs it)
# The Rust crate itself needs none of this: dependents use it through cargo.

CARGO    ?= cargo
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
CC       ?= cc
TARGET   ?= target
OUT      := $(TARGET)/release
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR    := $(firstword $(subst ., ,$(VERSION)))
# What `rustc --print native-static-libs` lists for the static library (less -lc).
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl
HEADERS  := include/mpkit.h $(wildcard include/mpkit.hpp)

.PHONY: all lib mpi install uninstall check clean
all: lib

# The SONAME follows the major version; src/ffi/exports.map keeps the exports to mpk_*.
LINK_ARGS := -C link-arg=-Wl,-soname,libmpkit.so.$(MAJOR) -C link-arg=-Wl,--version-script=$(CURDIR)/src/ffi/exports.map

lib:
	$(CARGO) rustc --quiet --release --lib --target-dir $(TARGET) --crate-type staticlib,cdylib -- $(LINK_ARGS)

# libmpkit_mpi: mpkit-mpi's C ABI, with libmpkit inside (link with mpicc); exports mpk_* only.
MPI_LINK_ARGS := -C link-arg=-Wl,-soname,libmpkit_mpi.so.$(MAJOR) -C link-arg=-Wl,--version-script=$(CURDIR)/src/ffi/exports.map

mpi:
	$(CARGO) rustc --quiet --release -p mpkit-mpi --lib --target-dir $(TARGET) --crate-type staticlib,cdylib -- $(MPI_LINK_ARGS)

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/mpkit $(DESTDIR)$(INCDIR)
	install -m 644 $(OUT)/libmpkit.a $(DESTDIR)$(LIBDIR)/libmpkit.a
	install -m 755 $(OUT)/libmpkit.so $(DESTDIR)$(LIBDIR)/libmpkit.so.$(VERSION)
	ln -sf libmpkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmpkit.so.$(MAJOR)
	ln -sf libmpkit.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libmpkit.so
	install -m 644 $(HEADERS) $(DESTDIR)$(INCDIR)/
	printf '%s\n' \
	  'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: mpkit' \
	  'Description: multiprocessing for native code: shared-memory queues, robust locks, shared arrays, processes, a worker pool' \
	  'Version: $(VERSION)' \
	  'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -lmpkit' \
	  'Libs.private: $(STATIC_LIBS)' > $(DESTDIR)$(LIBDIR)/pkgconfig/mpkit.pc
	printf '%s\n' \
	  '# mpkit $(VERSION): the imported target mpkit::mpkit (shared), and mpkit::mpkit_static.' \
	  'get_filename_component(_mpkit_prefix "$${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)' \
	  'find_package(Threads REQUIRED)' \
	  'if(NOT TARGET mpkit::mpkit)' \
	  '  add_library(mpkit::mpkit SHARED IMPORTED)' \
	  '  set_target_properties(mpkit::mpkit PROPERTIES' \
	  '    IMPORTED_LOCATION "$${_mpkit_prefix}/lib/libmpkit.so.$(VERSION)"' \
	  '    IMPORTED_SONAME "libmpkit.so.$(MAJOR)"' \
	  '    INTERFACE_INCLUDE_DIRECTORIES "$${_mpkit_prefix}/include")' \
	  '  add_library(mpkit::mpkit_static STATIC IMPORTED)' \
	  '  set_target_properties(mpkit::mpkit_static PROPERTIES' \
	  '    IMPORTED_LOCATION "$${_mpkit_prefix}/lib/libmpkit.a"' \
	  '    INTERFACE_INCLUDE_DIRECTORIES "$${_mpkit_prefix}/include"' \
	  '    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;dl")' \
	  'endif()' \
	  'unset(_mpkit_prefix)' > $(DESTDIR)$(LIBDIR)/cmake/mpkit/mpkitConfig.cmake
	printf '%s\n' \
	  'set(PACKAGE_VERSION "$(VERSION)")' \
	  'if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION OR NOT PACKAGE_FIND_VERSION_MAJOR EQUAL $(MAJOR))' \
	  '  set(PACKAGE_VERSION_COMPATIBLE FALSE)' \
	  'else()' \
	  '  set(PACKAGE_VERSION_COMPATIBLE TRUE)' \
	  '  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)' \
	  '    set(PACKAGE_VERSION_EXACT TRUE)' \
	  '  endif()' \
	  'endif()' > $(DESTDIR)$(LIBDIR)/cmake/mpkit/mpkitConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libmpkit.a $(DESTDIR)$(LIBDIR)/libmpkit.so $(DESTDIR)$(LIBDIR)/libmpkit.so.$(MAJOR) \
	  $(DESTDIR)$(LIBDIR)/libmpkit.so.$(VERSION) $(DESTDIR)$(INCDIR)/mpkit.h $(DESTDIR)$(INCDIR)/mpkit.hpp \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/mpkit.pc
	rm -rf $(DESTDIR)$(LIBDIR)/cmake/mpkit

check:
	.ci/install-check

clean:
	$(CARGO) clean --target-dir $(TARGET)
