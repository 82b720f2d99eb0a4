/*
 * Parley's embed script, served by Parley at /embed.js.
 *
 *   const meeting = new ParleyMeeting(element, { url, roomId, jwt });
 *   meeting.on("joined", ({ roomId, userId }) => ...);
 *   meeting.mute("audio");
 *
 * Makes an iframe of the meeting page (camera, microphone and screen sharing allowed) inside
 * `element`, hears the meeting's events and sends it commands, both over postMessage: only
 * messages from that iframe and Parley's origin are heard, and commands go to Parley's origin
 * only. Events: joined, left, participantJoined, participantLeft, ended, error. Commands:
 * leave(), mute(kind), unmute(kind) (kind: "audio" or "video"). Parley must list this page's
 * origin in PARLEY_FRAME_ANCESTORS. Wire format: { protocol: "parley-embed/1", type: "event",
 * name, data } from the meeting, { protocol: "parley-embed/1", type: "command", name, kind? }
 * to it.
 */
(function () {
  "use strict";

  var PROTOCOL = "parley-embed/1";
  var EVENTS = ["joined", "left", "participantJoined", "participantLeft", "ended", "error"];
  var KINDS = ["audio", "video"];

  function ParleyMeeting(element, options) {
    if (!(this instanceof ParleyMeeting)) throw new TypeError("use new ParleyMeeting(...)");
    if (!element || typeof element.appendChild !== "function") {
      throw new TypeError("ParleyMeeting: element must be a DOM element");
    }
    options = options || {};
    if (typeof options.url !== "string" || typeof options.roomId !== "string" || !options.roomId) {
      throw new TypeError("ParleyMeeting: options.url and options.roomId are required");
    }
    var base = new URL(options.url, window.location.href);
    if (base.protocol !== "https:" && base.protocol !== "http:") {
      throw new TypeError("ParleyMeeting: options.url must be an http(s) URL");
    }
    this.origin = base.origin;
    this.roomId = options.roomId;
    this._handlers = {};
    var src = new URL("/r/" + encodeURIComponent(options.roomId), base);
    src.searchParams.set("embed", window.location.origin);
    if (options.jwt) src.searchParams.set("jwt", options.jwt);
    var frame = document.createElement("iframe");
    frame.src = src.toString();
    frame.allow = "camera; microphone; display-capture; autoplay; fullscreen";
    frame.title = options.title || "Meeting";
    frame.style.border = "0";
    frame.style.width = options.width || "100%";
    frame.style.height = options.height || "100%";
    this.iframe = frame;
    var self = this;
    this._listener = function (event) {
      self._received(event);
    };
    window.addEventListener("message", this._listener);
    element.appendChild(frame);
  }

  /** Calls `handler(data)` for each event `name`; returns a function that stops it. */
  ParleyMeeting.prototype.on = function (name, handler) {
    if (EVENTS.indexOf(name) < 0) throw new TypeError("ParleyMeeting: no event " + name);
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    var self = this;
    return function () {
      self.off(name, handler);
    };
  };

  ParleyMeeting.prototype.off = function (name, handler) {
    var list = this._handlers[name] || [];
    var at = list.indexOf(handler);
    if (at >= 0) list.splice(at, 1);
  };

  ParleyMeeting.prototype.leave = function () {
    this._command("leave");
  };

  ParleyMeeting.prototype.mute = function (kind) {
    this._command("mute", kind || "audio");
  };

  ParleyMeeting.prototype.unmute = function (kind) {
    this._command("unmute", kind || "audio");
  };

  /** Removes the iframe (leaving the meeting with it) and stops listening. */
  ParleyMeeting.prototype.destroy = function () {
    window.removeEventListener("message", this._listener);
    if (this.iframe.parentNode) this.iframe.parentNode.removeChild(this.iframe);
    this._handlers = {};
  };

  ParleyMeeting.prototype._command = function (name, kind) {
    if (kind !== undefined && KINDS.indexOf(kind) < 0) {
      throw new TypeError("ParleyMeeting: kind must be audio or video");
    }
    var target = this.iframe.contentWindow;
    if (!target) return;
    var message = { protocol: PROTOCOL, type: "command", name: name };
    if (kind !== undefined) message.kind = kind;
    target.postMessage(message, this.origin);
  };

  ParleyMeeting.prototype._received = function (event) {
    if (event.origin !== this.origin || event.source !== this.iframe.contentWindow) return;
    var message = event.data;
    if (!message || message.protocol !== PROTOCOL || message.type !== "event") return;
    if (EVENTS.indexOf(message.name) < 0) return;
    var handlers = (this._handlers[message.name] || []).slice();
    for (var i = 0; i < handlers.length; i++) {
      try {
        handlers[i](message.data || {});
      } catch (error) {
        setTimeout(function () {
          throw error;
        });
      }
    }
  };

  window.ParleyMeeting = ParleyMeeting;
})();
