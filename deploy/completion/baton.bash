# bash completion for baton (installed as
# /usr/share/bash-completion/completions/baton). The command list is
# checked against `baton help` by the package test.
_baton() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local commands="run status switchover maintenance validate kvm sessions events sync peerings render policy init keygen version help"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	case "$prev" in
	--config | --out | --token-file | --socket | --dir)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--etc)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--cloud)
		if [ "${COMP_WORDS[1]}" = init ]; then
			COMPREPLY=($(compgen -W "azure aws kvm" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "azure aws" -- "$cur"))
		fi
		return
		;;
	--steer)
		COMPREPLY=($(compgen -W "probe routes vip bgp" -- "$cur"))
		return
		;;
	esac
	case "${COMP_WORDS[1]}" in
	maintenance) COMPREPLY=($(compgen -W "on off" -- "$cur")) ;;
	kvm) COMPREPLY=($(compgen -W "plan check" -- "$cur")) ;;
	sync) COMPREPLY=($(compgen -W "now status diff" -- "$cur")) ;;
	render) COMPREPLY=($(compgen -W "bird" -- "$cur")) ;;
	help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
	*)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$(baton "${COMP_WORDS[1]}" -h 2>&1 | sed -n 's/^  \(-[a-z-]*\).*/-\1/p')" -- "$cur"))
		fi
		;;
	esac
}
complete -F _baton baton
