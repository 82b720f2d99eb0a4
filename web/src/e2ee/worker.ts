/// <reference lib="webworker" />
/**
 * The media frame transform worker (`RTCRtpScriptTransform`): one for the page, holding the
 * meeting keys the page gives it.
 */
import { FrameCrypto, pipe, type EncodedFrame, type TransformOptions } from "./frames";

interface TransformEvent extends Event {
  transformer: {
    readable: ReadableStream<EncodedFrame>;
    writable: WritableStream<EncodedFrame>;
    options: TransformOptions;
  };
}

const scope = self as unknown as DedicatedWorkerGlobalScope & {
  onrtctransform: ((ev: TransformEvent) => void) | null;
};
const fc = new FrameCrypto();

scope.onmessage = (ev: MessageEvent<{ type: "keys"; keys: [number, Uint8Array][]; current: number }>) => {
  if (ev.data.type === "keys") fc.setKeys(ev.data.keys, ev.data.current);
};

scope.onrtctransform = (ev: TransformEvent) => {
  const t = ev.transformer;
  pipe(fc, t.options, t.readable, t.writable, (status) => scope.postMessage(status));
};
