"""The rules of a live room, as pure functions: ``LiveRoom`` × request → (``LiveRoom``, effects).

A rule reads nothing but its arguments (the room, the request, the moment ``now``, ids and
tokens made by its caller) and raises the error the client sees (``parley.errors``) when it
refuses. The services around them hold the room, call the media engine where it must succeed
first, save what the rule returned and then deliver its effects (``parley.rooms.effects``).

``membership``: ways in and out, host hand-over; ``lobby``: the door; ``controls``: a host's
settings and powers, hands; ``media``: streams and subscriptions; ``screen``: one sharer.
"""
