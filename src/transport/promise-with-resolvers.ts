/**
 * `Promise.withResolvers` (ES2024) for Node 20, which lacks it.
 *
 * libp2p's peer store reaches it through mortice → it-queue, so a libp2p node on Node 20 dies at
 * start with "Promise.withResolvers is not a function". Importing conclave patches nothing: the
 * transport calls this just before it creates a libp2p node, so the method is added only in a
 * process that starts a member or observer, only where it is missing, and as the standard
 * method (a native implementation, Node 22 and later, is left untouched).
 */

interface Resolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const PromiseCtor = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }

/** Adds `Promise.withResolvers` where it is missing; idempotent. */
export function ensurePromiseWithResolvers (): void {
  if (typeof PromiseCtor.withResolvers === 'function') return
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T> (this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve']
      let reject!: Resolvers<T>['reject']
      // Honour subclasses, as the native method does (`this` is the constructor it was called on).
      const Ctor: PromiseConstructor = typeof this === 'function' ? this : Promise
      const promise = new Ctor<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
