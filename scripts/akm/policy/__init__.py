"""The access policy as code (Nizom F4): who may reach which sites and internal data, approved by the
director, with expiring grants; one validated model and one generator per platform."""
