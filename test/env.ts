// What the machine running the tests allows, decided one way for every suite.
import { accessSync, constants } from 'node:fs';

/** Under CI a suite that cannot run is a failure, not a skip (CI unset, '', '0' or 'false': not CI). */
export function isCi(): boolean {
	return !['', '0', 'false'].includes(process.env.CI ?? '');
}

/** Root with a readable and writable /dev/kmsg: records can be injected and read back. */
export function canWriteKmsg(): boolean {
	try {
		accessSync('/dev/kmsg', constants.R_OK | constants.W_OK);
		return process.getuid?.() === 0;
	} catch {
		return false;
	}
}
