/ip firewall address-list
add list=a address=198.18.20.1
print
