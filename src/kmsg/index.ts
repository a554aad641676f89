// Kernel log capture (/dev/kmsg) and parsing of hybridmem_test events and crash reports.
export { parseKmsgRecord, unescapeKmsg, formatKmsgRecord, KmsgFormatError, type KmsgRecord } from './record.js';
export { normaliseLine, stripAnsi, type NormalisedLine } from './text.js';
export { parseModuleEvent, MODULE_PREFIX, type ModuleEvent, type ModuleEventType } from './events.js';
export type * from './events.js';
export { parseFrame, matchHeadline, type ReportKind, type StackFrame, type Headline } from './report-lines.js';
export { CallerReportAssembler, ReportAssembler, type CrashReport } from './reports.js';
export { parseKernelLog, parseRecords, KernelLogParser, type KernelLog, type KernelLogParserOptions } from './parse.js';
export { toJson, bigintReplacer } from './json.js';
export {
	startCapture,
	readKernelLog,
	KmsgCapture,
	KmsgReader,
	KMSG_PATH,
	type KernelLogCapture,
	type CaptureResult,
	type CaptureOptions,
	type RecordPredicate,
} from './reader.js';
export { KmsgAccessError, DmesgCapture, parseDmesgRaw } from './dmesg-fallback.js';
export { SequenceTracker } from './sequence.js';
