"""StickerWorld: procedural stickers with six-attribute tags, for the builtin model.

The renderer is known, so every attribute of every sample is exact: the subject
mask, the tags and the caption (built by the bot's own prompt builder). It trains
the builtin model and grounds the quality benchmark's recognisers.
"""
