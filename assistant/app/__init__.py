"""The app's controllers (ui.py only lays out and wires): the conversation, the chat view, the
knowledge panel, access control and the demo data."""
