"""What the agent offers the model: the tool registry (schemas from signatures, the data fence),
the knowledge and expert tools, the render tools, and the evidence shared with the analysis."""
