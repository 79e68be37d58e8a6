/**
 * `Promise.withResolvers` for Node 20 (VERSIONS.md trap 1).
 *
 * libp2p's peer store reaches it through mortice → it-queue; without it start-up dies with
 * "Promise.withResolvers is not a function". Import this module for its side effect, before
 * anything that loads libp2p, in every entry point and in the test setup. It is idempotent
 * and leaves a native implementation (Node ≥ 22) untouched.
 */

interface Resolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const PromiseCtor = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }

if (typeof PromiseCtor.withResolvers !== 'function') {
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

export {}
