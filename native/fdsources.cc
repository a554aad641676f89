// File descriptors of in-tree mmap providers that need a syscall other than
// open(): an AF_PACKET ring, an io_uring instance, a perf event, a sealed
// memfd (what udmabuf takes).  `hybridmem check` recipes map them; each
// function returns the fd (and what the caller needs to size the mapping).
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "fdsources.h"

namespace hybridmem {

namespace {

void CloseKeepErrno(int fd) {
	int saved = errno;
	close(fd);
	errno = saved;
}

// packetRing({ tx, blockSize, blockCount, frameSize }): socket(AF_PACKET,
// SOCK_RAW, 0) receives nothing (no protocol hook), so the kernel never
// writes into the ring while it is checked; TPACKET_V1 (the default) ring.
Napi::Value PacketRing(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	Napi::Object o = ToOptions(info[0], "options");
	tpacket_req req{};
	req.tp_block_size = static_cast<unsigned>(ToInt(o.Get("blockSize"), "options.blockSize", 1, UINT32_MAX));
	req.tp_block_nr = static_cast<unsigned>(ToInt(o.Get("blockCount"), "options.blockCount", 1, UINT32_MAX));
	req.tp_frame_size = static_cast<unsigned>(ToInt(o.Get("frameSize"), "options.frameSize", 1, UINT32_MAX));
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	bool tx = o.Get("tx").ToBoolean();
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) ThrowErrno(env, errno, "socket");
	if (setsockopt(fd, SOL_PACKET, tx ? PACKET_TX_RING : PACKET_RX_RING, &req, sizeof(req)) != 0) {
		CloseKeepErrno(fd);
		ThrowErrno(env, errno, "setsockopt");
	}
	return Napi::Number::New(env, fd);
}

// ioUringSetup(entries): io_uring_setup(2) and the offsets its rings are
// mapped at and sized by.
Napi::Value IoUringSetup(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	io_uring_params p{};
	unsigned entries = static_cast<unsigned>(ToInt(info[0], "entries", 1, 32768));
	int fd = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
	if (fd < 0) ThrowErrno(env, errno, "io_uring_setup");
	Napi::Object o = Napi::Object::New(env);
	o.Set("fd", fd);
	o.Set("sqEntries", p.sq_entries);
	o.Set("cqEntries", p.cq_entries);
	o.Set("features", p.features);
	o.Set("sqArray", p.sq_off.array);
	o.Set("cqCqes", p.cq_off.cqes);
	o.Set("sqeSize", static_cast<unsigned>(sizeof(io_uring_sqe)));
	o.Set("cqeSize", static_cast<unsigned>(sizeof(io_uring_cqe)));
	o.Set("offSqRing", Napi::BigInt::New(env, static_cast<uint64_t>(IORING_OFF_SQ_RING)));
	o.Set("offCqRing", Napi::BigInt::New(env, static_cast<uint64_t>(IORING_OFF_CQ_RING)));
	o.Set("offSqes", Napi::BigInt::New(env, static_cast<uint64_t>(IORING_OFF_SQES)));
	return o;
}

// perfEventOpen({ type, config }): a disabled counting event of this process
// on any CPU, whose ring buffer is what gets mapped.
Napi::Value PerfEventOpen(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	Napi::Object o = ToOptions(info[0], "options");
	perf_event_attr attr{};
	attr.size = sizeof(attr);
	attr.type = static_cast<uint32_t>(ToInt(o.Get("type"), "options.type", 0, UINT32_MAX));
	attr.config = ToU64(o.Get("config"), "options.config");
	attr.disabled = 1;
	int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
	if (fd < 0) ThrowErrno(env, errno, "perf_event_open");
	return Napi::Number::New(env, fd);
}

// sealedMemfd(name, size, seals): memfd_create(MFD_ALLOW_SEALING), sized,
// then F_ADD_SEALS (udmabuf wants F_SEAL_SHRINK and refuses F_SEAL_WRITE).
Napi::Value SealedMemfd(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	if (!info[0].IsString()) ThrowArgType(env, "name", "of type string", info[0]);
	std::string name = info[0].As<Napi::String>().Utf8Value();
	if (name.size() > 249 || name.find('\0') != std::string::npos)
		ThrowArgValue(env, "name", "must be at most 249 bytes without null bytes", info[0]);
	uint64_t size = ToU64(info[1], "size");
	int seals = static_cast<int>(ToInt(info[2], "seals", 0, INT32_MAX));
	int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) ThrowErrno(env, errno, "memfd_create");
	if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
		CloseKeepErrno(fd);
		ThrowErrno(env, errno, "ftruncate");
	}
	if (seals && fcntl(fd, F_ADD_SEALS, seals) != 0) {
		CloseKeepErrno(fd);
		ThrowErrno(env, errno, "fcntl");
	}
	return Napi::Number::New(env, fd);
}

}  // namespace

void InitFdSources(Napi::Env env, Napi::Object exports) {
	exports.Set("packetRing", Napi::Function::New<PacketRing>(env, "packetRing"));
	exports.Set("ioUringSetup", Napi::Function::New<IoUringSetup>(env, "ioUringSetup"));
	exports.Set("perfEventOpen", Napi::Function::New<PerfEventOpen>(env, "perfEventOpen"));
	exports.Set("sealedMemfd", Napi::Function::New<SealedMemfd>(env, "sealedMemfd"));
	Napi::Object c = Napi::Object::New(env);
	c.Set("F_SEAL_SEAL", F_SEAL_SEAL);
	c.Set("F_SEAL_SHRINK", F_SEAL_SHRINK);
	c.Set("F_SEAL_GROW", F_SEAL_GROW);
	c.Set("F_SEAL_WRITE", F_SEAL_WRITE);
	c.Set("PERF_TYPE_SOFTWARE", static_cast<int>(PERF_TYPE_SOFTWARE));
	c.Set("PERF_COUNT_SW_DUMMY", static_cast<int>(PERF_COUNT_SW_DUMMY));
	c.Set("IORING_FEAT_SINGLE_MMAP", IORING_FEAT_SINGLE_MMAP);
	exports.Set("fdConstants", c);
}

}  // namespace hybridmem
