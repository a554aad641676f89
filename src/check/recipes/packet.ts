// AF_PACKET's mmap'ed rings: pages of __get_free_pages(__GFP_COMP |
// __GFP_ZERO) (vzalloc as a fallback) put in place with vm_insert_page.  The
// socket has protocol 0, so no packet is ever written into the ring.
import type { Recipe } from './context.js';

function ring(tx: boolean): Recipe {
	const name = tx ? 'af-packet-tx' : 'af-packet-rx';
	return {
		name,
		description: `an AF_PACKET ${tx ? 'PACKET_TX_RING' : 'PACKET_RX_RING'} (TPACKET_V1, one page per block, 2 KiB frames), mapped whole at 0`,
		open(ctx) {
			const device = ctx.openPacketRing({ tx, blockSize: ctx.pageSize, blockCount: ctx.pages, frameSize: 2048 });
			return { device, offset: 0n, length: ctx.pages * ctx.pageSize, close: () => !device.closed && device.close() };
		},
	};
}

export const packetRx = ring(false);
export const packetTx = ring(true);
