"""Language models behind one small interface, and the guarded diagnosis agent that uses them.

The model advises; policy and people decide. See `workflows.llm.model` for the interface.
"""
