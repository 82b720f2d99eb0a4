"""Recording: a host starts and stops it; the media engine writes every published track to
disk as it arrives; a background job composes one file of the meeting from them."""
