# -z nodelete: the .node installs a process-wide SIGSEGV/SIGBUS handler, so it
# must never be unloaded (Node dlcloses an addon when the worker that loaded it
# exits); native/guard.h.
{
	"targets": [
		{
			"target_name": "hybridmem",
			"sources": [
				"native/addon.cc",
				"native/args.cc",
				"native/errors.cc",
				"native/fdsources.cc",
				"native/guard.cc",
				"native/mapping.cc",
				"native/modload.cc",
				"native/patterns.cc"
			],
			"include_dirs": [
				"<!@(node -p \"require('node-addon-api').include\")",
				"kmod"
			],
			"defines": [
				"NAPI_VERSION=8",
				"NAPI_CPP_EXCEPTIONS",
				"NODE_ADDON_API_DISABLE_DEPRECATED"
			],
			"cflags!": ["-fno-exceptions", "-O2"],
			"cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
			"cflags": ["-O3"],
			"cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-Wall", "-Wextra"],
			"ldflags": ["-Wl,-z,nodelete"]
		}
	]
}
