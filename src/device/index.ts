// The device API: open /dev/devKex (or /dev/zero, a memfd), map, fill, verify, probe.
/// <reference types="node" preserve="true" />
// (the declarations use Node's types: Disposable via @types/node on older libs, Buffer and NodeJS.* in the modules re-exported next to this one)
export { openDevice, KexDevice, MAP_MODES, DEFAULT_DEVICE_PATH } from './device.js';
export type { MapMode, OpenOptions, DeviceInfo, DeviceStats, ModeOptions, RangeTarget, RangeResult } from './device.js';
export { Mapping, ASYNC_THRESHOLD } from './mapping.js';
export type { Protection, RegionOptions, VerifyOptions, FillResult, VerifyResult, Mismatch, PageState, ProbeOptions, ProbeResult } from './mapping.js';
export type { MapOptions } from './protection.js';
export { MemFile, createMemFile } from './memfd.js';
export { PATTERNS, expectedBytes, randomWord } from './patterns.js';
export type { PatternName, PatternOptions } from './patterns.js';
export { isSystemError } from './errors.js';
export type { SystemError, CodedError } from './errors.js';
export { loadBinding } from './binding.js';
export { openPacketRing, openIoUring, openPerfEvent, openSealedMemFile } from './fd-sources.js';
export type { PacketRingOptions, IoUring } from './fd-sources.js';
