#!/usr/bin/env ruby
# frozen_string_literal: true

# Renders every template of one BOSH job the way the director does, without the bosh-template
# gem (which Debian does not package): properties are resolved from the job spec's defaults and
# a manifest property set, links and `spec` come from the same input, and `p`, `if_p`, `link`,
# `if_link` and `spec` behave as in bosh-template (a property without value or default raises).
#
#   ruby render.rb JOB_DIR INPUT.json OUT_DIR
#
# INPUT.json: {"properties": {...manifest job properties, nested...},
#              "links": {"nats-tls": {"instances": [{"address": "10.0.0.1"}], "properties": {...}}},
#              "spec": {...overrides of the instance spec: address, index, id, deployment...}}
# Each template is written to OUT_DIR/<its destination in the job spec>. On a template error the
# template and the error are printed on stderr and the exit status is 1.

require 'erb'
require 'fileutils'
require 'json'
require 'ostruct'
require 'yaml'

module BoshRender
  class UnknownProperty < StandardError; end
  class UnknownLink < StandardError; end

  # Walks a nested hash by a dotted name; [found, value].
  def self.dig(hash, dotted)
    dotted.split('.').reduce([true, hash]) do |(_, node), key|
      return [false, nil] unless node.is_a?(Hash) && node.key?(key)

      [true, node[key]]
    end
  end

  def self.store(hash, dotted, value)
    keys = dotted.split('.')
    last = keys.pop
    node = keys.reduce(hash) { |h, key| h[key] ||= {} }
    node[last] = value
  end

  # What the director hands to the templates: every property the spec declares, with the
  # manifest's value or else the spec's default (nil when neither).
  def self.resolve(spec_properties, manifest)
    resolved = {}
    (spec_properties || {}).each do |name, definition|
      found, value = dig(manifest, name)
      value = (definition || {})['default'] if !found || value.nil?
      store(resolved, name, value)
    end
    resolved
  end

  # `x.else { }` after if_p / if_link.
  class ElseBlock
    def initialize(active)
      @active = active
    end

    def else
      yield if @active
    end
  end

  # Shared by the template context and links.
  module PropertyLookup
    def p(*args)
      names = Array(args[0])
      names.each do |name|
        found, value = BoshRender.dig(@raw_properties, name)
        return value if found && !value.nil?
      end
      return args[1] if args.length == 2

      raise UnknownProperty, "Can't find property '#{names.join("', '")}'"
    end

    def if_p(*names)
      values = names.map do |name|
        found, value = BoshRender.dig(@raw_properties, name)
        return ElseBlock.new(true) unless found && !value.nil?

        value
      end
      yield(*values)
      ElseBlock.new(false)
    end
  end

  class Link
    include PropertyLookup
    attr_reader :instances, :address

    def initialize(definition)
      @raw_properties = definition['properties'] || {}
      @instances = (definition['instances'] || []).each_with_index.map do |instance, i|
        OpenStruct.new({ 'name' => 'instance', 'id' => "id-#{i}", 'index' => i, 'az' => 'z1',
                         'bootstrap' => i.zero? }.merge(instance))
      end
      @address = definition['address'] || 'q-s0.link.default.deployment.bosh'
    end
  end

  # The object the ERB templates are evaluated in.
  class Context
    include PropertyLookup

    def initialize(raw_properties, links, spec)
      @raw_properties = raw_properties
      @links = links
      @spec = spec
    end

    attr_reader :spec

    def link(name)
      raise UnknownLink, "Can't find link '#{name}'" unless @links.key?(name)

      Link.new(@links[name])
    end

    def if_link(name)
      return ElseBlock.new(true) unless @links.key?(name)

      yield Link.new(@links[name])
      ElseBlock.new(false)
    end

    def render(text)
      ERB.new(text, trim_mode: '-').result(binding)
    end
  end

  def self.instance_spec(job_name, overrides)
    defaults = {
      'name' => job_name, 'job' => OpenStruct.new('name' => job_name), 'id' => 'd5e0f1a2-instance',
      'index' => 0, 'az' => 'z1', 'bootstrap' => true, 'deployment' => 'promfetcher',
      'address' => '10.0.1.10', 'ip' => '10.0.1.10', 'networks' => {}
    }
    OpenStruct.new(defaults.merge(overrides || {}))
  end

  def self.main(job_dir, input_path, out_dir)
    job_spec = YAML.safe_load(File.read(File.join(job_dir, 'spec')))
    input = JSON.parse(File.read(input_path))
    declared = (job_spec['consumes'] || []).map { |c| c['name'] }
    links = input['links'] || {}
    undeclared = links.keys - declared
    raise UnknownLink, "links #{undeclared} are not consumed by #{job_spec['name']}" unless undeclared.empty?

    context = Context.new(resolve(job_spec['properties'], input['properties'] || {}), links,
                          instance_spec(job_spec['name'], input['spec']))
    (job_spec['templates'] || {}).each do |source, destination|
      begin
        output = context.render(File.read(File.join(job_dir, 'templates', source)))
      rescue StandardError => e
        warn "render: #{source}: #{e.class.name.split('::').last}: #{e.message}"
        exit 1
      end
      path = File.join(out_dir, destination)
      FileUtils.mkdir_p(File.dirname(path))
      File.write(path, output)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  abort 'usage: ruby render.rb JOB_DIR INPUT.json OUT_DIR' unless ARGV.length == 3
  BoshRender.main(*ARGV)
end
