/**
 * The member's peer key (its identity: the member id is derived from it), as bytes a durable
 * state directory can keep (state/durable-state.ts). Only this folder knows libp2p's key types.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

/** A new Ed25519 peer key, protobuf-encoded (the form libp2p itself stores keys in). */
export async function newPeerKey (): Promise<Uint8Array> {
  return privateKeyToProtobuf(await generateKeyPair('Ed25519'))
}

/** Decodes a stored peer key; throws a plain Error naming the problem when the bytes are not one. */
export function decodePeerKey (bytes: Uint8Array): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new Error(`not a libp2p private key (${err instanceof Error ? err.message : String(err)})`)
  }
}
