"""The Socket.IO edge: parse a payload, call one service method, answer the contract's way."""
