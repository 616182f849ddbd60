# libsolv testcase (testsolv FILE): see tests/resolve/README.md
repo system 0 testtags <inline>
#>=Pkg: kernel-amd64 6.1.0 54.amd64 noarch
#>=Prv: kernel-uname-r = 6.1.0-54-amd64
#>=Prv: ksym(amd64:pci_register) = 7777
#>=Prv: kmod(libata.ko)
repo kmp 0 testtags <inline>
#>=Pkg: e1000-kmp-amd64 6.1.190 1 x86_64
#>=Req: ksym(amd64:pci_register) = 1a2b
#>=Prv: kmod(e1000.ko)
#>=Sup: kernel-amd64 & namespace:modalias(pci:v00008086d0000100Esv*sd*bc*sc*i*)
#>=Pkg: ahci-kmp-amd64 6.1.190 1 x86_64
#>=Req: kmod(libata.ko)
#>=Prv: kmod(ahci.ko)
#>=Sup: kernel-amd64 & namespace:modalias(pci:v*d*sv*sd*bc01sc06i01*)
#>=Pkg: snd-kmp-amd64 6.1.190 1 x86_64
#>=Prv: kmod(snd.ko)
#>=Sup: kernel-amd64 & namespace:modalias(pci:v00008086d*)
#>=Pkg: kernel-amd64 6.1.190 1 x86_64
#>=Prv: ksym(amd64:pci_register) = 1a2b
system x86_64 rpm system
namespace namespace:modalias(pci:v00008086d0000100Esv*sd*bc*sc*i*) @SYSTEM
namespace namespace:modalias(pci:v*d*sv*sd*bc01sc06i01*) @SYSTEM
namespace namespace:modalias(pci:v00008086d*) @SYSTEM
solverflags ignorerecommended
job lock name kernel-amd64
job install name e1000-kmp-amd64
result transaction,problems <inline>
#>problem fbbca0e4 info package e1000-kmp-amd64-6.1.190-1.x86_64 requires ksym(amd64:pci_register) = 1a2b, but none of the providers can be installed
#>problem fbbca0e4 solution cea59b9f deljob lock name kernel-amd64
#>problem fbbca0e4 solution eaf3e9cf deljob install name e1000-kmp-amd64
