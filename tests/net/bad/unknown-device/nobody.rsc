/system identity
set name=x
