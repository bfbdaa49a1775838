"""Wire dialects behind one interface (base.py); the session picks one, the chat loop never does."""
