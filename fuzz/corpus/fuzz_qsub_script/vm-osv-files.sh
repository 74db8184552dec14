#PBS -N "osv job" -l 'mem=512mb'   # a trailing comment
#PBS -vm img=osv-0.57.img,distro=osv,ram=256
#PBS -vm vm_prologue=/home/alice/pro.sh,vm_epilogue=/home/alice/epi.sh
#PBS -vm metadata=/home/alice/meta.yaml,disk=/home/alice/data.qcow2
#PBSfoo this is a comment
	
#PBS -r n -h -V -k oe -S /bin/bash
/bin/app
#PBS -vm vcpus=999
