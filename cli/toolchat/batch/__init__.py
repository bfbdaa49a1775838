"""`toolchat batch`: many tool-calling conversations from a JSONL file, locally at the rate limit
(engine.py, pacing.py) or through the Message Batches API round by round (rounds.py, api.py),
resumable from the conversation log's database (state.py)."""
