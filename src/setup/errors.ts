// Errors of setup, teardown and build: each message says what happened and
// what to do about it; `code` lets tests and callers tell them apart.
export type SetupErrorCode =
	| 'ERR_NOT_ROOT'
	| 'ERR_NO_MODULE_SUPPORT'
	| 'ERR_MODULE_MISSING'
	| 'ERR_VERMAGIC'
	| 'ERR_SIGNATURE'
	| 'ERR_LOCKDOWN'
	| 'ERR_PARAMS_DIFFER'
	| 'ERR_BAD_PARAM'
	| 'ERR_INSMOD'
	| 'ERR_NO_MAJOR'
	| 'ERR_MAPPINGS_ALIVE'
	| 'ERR_RMMOD'
	| 'ERR_BUILD'
	| 'ERR_BAD_MODE';

export class SetupError extends Error {
	constructor(
		readonly code: SetupErrorCode,
		message: string,
	) {
		super(message);
		this.name = 'SetupError';
	}
}
