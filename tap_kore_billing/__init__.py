"""Singer tap for Kore.ai XO Platform billing sessions."""
